/* SPDX-License-Identifier: MIT */
/* Helpers shared by the action tests: rule sets from YAML text, alerts made
 * by hand, temporary directories, files, stderr capture, waiting. */
#ifndef TSG_ACT_TEST_H
#define TSG_ACT_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "action.h"
#include "tsg_test_yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double t_ms_since(uint64_t t0)
{
	return (double)(t_now_ns() - t0) / 1e6;
}

static inline void t_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A fresh private directory; removed by t_rmdir. */
static inline char *t_tmpdir(void)
{
	char tmpl[] = "/tmp/tsg-act-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	chmod(d, 0755); /* hooks running as `nobody` must reach their files */
	return strdup(d);
}

static inline int t_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void t_rmdir(char *d)
{
	if (d)
		nftw(d, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static inline void t_write(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Whole file, NUL-terminated (NULL if it does not exist). */
static inline char *t_read(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n = 0, cap = 4096;

	if (!f)
		return NULL;
	buf = malloc(cap);
	assert_non_null(buf);
	for (;;) {
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (n < cap - 1)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
		assert_non_null(buf);
	}
	buf[n] = 0;
	fclose(f);
	return buf;
}

static inline bool t_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Waits up to ms for path to exist (and be non-empty). */
static inline bool t_wait_file(const char *path, long ms)
{
	struct stat st;

	for (long t = 0; t < ms; t += 10) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return true;
		t_sleep_ms(10);
	}
	return stat(path, &st) == 0 && st.st_size > 0;
}

static inline char *t_path(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

/* Loads YAML text as a rule set; fails the test on errors. */
static inline struct tsg_ruleset *t_rules(const char *yaml)
{
	struct tsg_ruleset *rs = tsg_test_yaml_rules(yaml);

	assert_non_null(rs);
	return rs;
}

/* t_rules of YAML text made with printf. */
static inline struct tsg_ruleset *t_rulesf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* t_rules of YAML text made with vprintf. */
static inline struct tsg_ruleset *t_rulesv(const char *fmt, va_list ap)
{
	struct tsg_ruleset *rs;
	char *yaml;

	assert_true(vasprintf(&yaml, fmt, ap) > 0);
	rs = t_rules(yaml);
	free(yaml);
	return rs;
}

static inline struct tsg_ruleset *t_rulesf(const char *fmt, ...)
{
	struct tsg_ruleset *rs;
	va_list ap;

	va_start(ap, fmt);
	rs = t_rulesv(fmt, ap);
	va_end(ap);
	return rs;
}

static inline const struct tsg_rule *t_rule(const struct tsg_ruleset *rs, const char *name)
{
	for (size_t i = 0; i < rs->nrules; i++)
		if (!strcmp(rs->rules[i].name, name))
			return &rs->rules[i];
	fail_msg("no rule %s", name);
	return NULL;
}

/* A notification of rule `rule` for one socket 10.0.0.2:50000 -> 10.0.0.9:443 of curl. */
static inline void t_alert(struct tsg_alert *a, const struct tsg_ruleset *rs, const char *rule,
			   int status)
{
	struct timespec ts;

	memset(a, 0, sizeof(*a));
	a->rule = t_rule(rs, rule);
	a->rs = rs;
	a->status = status;
	a->ts_ns = 1234512000000ull;
	clock_gettime(CLOCK_REALTIME, &ts);
	a->wall_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	a->info.have = TSG_HAVE_ALL & ~TSG_HAVE(TSG_SF_CGROUP);
	a->info.family = TSG_FAM_IPV4;
	tsg_addr_parse("10.0.0.2", a->info.laddr, &a->info.family);
	tsg_addr_parse("10.0.0.9", a->info.raddr, &a->info.family);
	a->info.lport = 50000;
	a->info.rport = 443;
	a->info.pid = 4242;
	a->info.uid = 1000;
	snprintf(a->info.comm, sizeof(a->info.comm), "curl");
	a->from = TSG_SYN_SENT;
	a->to = TSG_CLOSE;
	a->key_is_sock = true;
	a->sk = 1;
	a->host = "web-1";
}

/* The actions of rs (opts may be NULL), and in *a a firing alert of rule `rule`. */
static inline struct tsg_actions *t_actions(const struct tsg_ruleset *rs,
					    const struct tsg_actions_opts *o, struct tsg_alert *a,
					    const char *rule)
{
	struct tsg_actions *acts;

	assert_int_equal(tsg_actions_new(rs, o, &acts), 0);
	t_alert(a, rs, rule, TSG_FIRING);
	return acts;
}

static inline struct tsg_action_stats t_stats(struct tsg_actions *acts, const char *name)
{
	struct tsg_action_stats st;

	assert_int_equal(tsg_actions_get_stats(acts, name, &st), 0);
	return st;
}

/* Polls until the action has finished `n` notifications (sent+failed+dropped). */
static inline bool t_wait_done(struct tsg_actions *acts, const char *name, uint64_t n, long ms)
{
	for (long t = 0; t <= ms; t += 10) {
		struct tsg_action_stats st = t_stats(acts, name);

		if (st.sent + st.failed + st.dropped >= n && st.queued_now == 0)
			return true;
		t_sleep_ms(10);
	}
	return false;
}

/* stderr capture: everything logged between begin and end goes to a file. */
struct t_capture {
	int saved;
	char path[64];
};

static inline void t_capture_begin(struct t_capture *c)
{
	int fd;

	snprintf(c->path, sizeof(c->path), "/tmp/tsg-act-log-XXXXXX");
	fd = mkstemp(c->path);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* Restores stderr, echoes what was captured, returns it (malloc'd). */
static inline char *t_capture_end(struct t_capture *c)
{
	char *s;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	s = t_read(c->path);
	unlink(c->path);
	if (s)
		fputs(s, stderr);
	return s ? s : strdup("");
}

/* Fails the test unless every string of the NULL-terminated `want` is in `text`. */
static inline void t_has_all(const char *text, const char *const *want)
{
	for (size_t i = 0; want[i]; i++)
		if (!strstr(text, want[i]))
			fail_msg("not in the output: \"%s\"", want[i]);
}

/* t_has_all(text, "a", "b", ...): the strings as a list. */
#define t_has(text, ...) t_has_all((text), (const char *const[]){__VA_ARGS__, NULL})

/* An alert of a state rule: `state` held for `duration_ns` (no transition). */
static inline void t_alert_long(struct tsg_alert *a, const struct tsg_ruleset *rs, const char *rule,
				int status, int state, uint64_t duration_ns)
{
	t_alert(a, rs, rule, status);
	a->from = a->to = 0;
	a->state = state;
	a->has_duration = true;
	a->duration_ns = duration_ns;
}

/*
 * One test's wiring: files in a temporary folder of its own (made on the first
 * t_fix_path, removed by t_fix_free), the rule set, its actions, a firing
 * alert of one rule and stderr captured while the actions live. A dry run
 * without dry_out prints into memory (out, once stopped).
 */
#define T_FIX_PATHS 8

struct t_fix {
	char *dir;
	char *paths[T_FIX_PATHS];
	size_t npaths;
	struct tsg_actions_opts o;
	struct tsg_ruleset *rs;
	struct tsg_actions *acts;
	struct tsg_alert a;
	struct t_capture cap;
	FILE *dry;
	char *out; /* the dry run's output */
	size_t out_len;
	char *log; /* what was logged from start to stop */
};

/* The fixture's folder, made on the first call. */
static inline const char *t_fix_dir(struct t_fix *f)
{
	if (!f->dir)
		f->dir = t_tmpdir();
	return f->dir;
}

/* dir/name (the fixture frees it). */
static inline const char *t_fix_path(struct t_fix *f, const char *name)
{
	t_fix_dir(f);
	assert_true(f->npaths < T_FIX_PATHS);
	f->paths[f->npaths] = t_path(f->dir, name);
	return f->paths[f->npaths++];
}

/* An executable script dir/name holding `text`. */
static inline const char *t_fix_script(struct t_fix *f, const char *name, const char *text)
{
	const char *p = t_fix_path(f, name);

	t_write(p, text, 0755);
	return p;
}

/* t_fix_script of a text made with printf. */
static inline const char *t_fix_scriptf(struct t_fix *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline const char *t_fix_scriptf(struct t_fix *f, const char *name, const char *fmt, ...)
{
	const char *p;
	va_list ap;
	char *text;

	va_start(ap, fmt);
	assert_true(vasprintf(&text, fmt, ap) > 0);
	va_end(ap);
	p = t_fix_script(f, name, text);
	free(text);
	return p;
}

/* The actions of the rule set made with printf (opts may be NULL), an alert
 * of `rule` firing in f->a; stderr captured from here on. */
static inline void t_fix_start(struct t_fix *f, const struct tsg_actions_opts *o, const char *rule,
			       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static inline void t_fix_start(struct t_fix *f, const struct tsg_actions_opts *o, const char *rule,
			       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	f->rs = t_rulesv(fmt, ap);
	va_end(ap);
	if (o)
		f->o = *o;
	if (f->o.dry_run && !f->o.dry_out) {
		f->dry = open_memstream(&f->out, &f->out_len);
		assert_non_null(f->dry);
		f->o.dry_out = f->dry;
	}
	f->acts = t_actions(f->rs, &f->o, &f->a, rule);
	t_capture_begin(&f->cap);
}

/* t_fix_start of one action, its YAML mapping made with printf, that rule r1
 * runs on every SYN_SENT -> CLOSE. */
static inline void t_fix_start_one(struct t_fix *f, const struct tsg_actions_opts *o,
				   const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline void t_fix_start_one(struct t_fix *f, const struct tsg_actions_opts *o,
				   const char *name, const char *fmt, ...)
{
	va_list ap;
	char *def;

	va_start(ap, fmt);
	assert_true(vasprintf(&def, fmt, ap) > 0);
	va_end(ap);
	t_fix_start(f, o, "r1",
		    "actions:\n"
		    "  - %s\n"
		    "rules:\n"
		    "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [%s]}\n",
		    def, name);
	free(def);
}

/* Frees the actions (waiting as tsg_actions_free waits); returns the log. */
static inline const char *t_fix_stop(struct t_fix *f)
{
	tsg_actions_free(f->acts);
	f->acts = NULL;
	f->log = t_capture_end(&f->cap);
	if (f->dry) {
		fclose(f->dry);
		f->dry = NULL;
		fputs(f->out, stderr);
	}
	return f->log;
}

/* Fires f->a with the process name `comm`. */
static inline void t_fix_fire_as(struct t_fix *f, const char *comm)
{
	snprintf(f->a.info.comm, sizeof(f->a.info.comm), "%s", comm);
	tsg_actions_fire(f->acts, &f->a);
}

/* Fails unless the dry run's output (once stopped) holds the text made with printf. */
static inline void t_fix_out_hasf(struct t_fix *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline void t_fix_out_hasf(struct t_fix *f, const char *fmt, ...)
{
	va_list ap;
	char *want;

	va_start(ap, fmt);
	assert_true(vasprintf(&want, fmt, ap) > 0);
	va_end(ap);
	if (!strstr(f->out, want))
		fail_msg("not in the dry run's output: \"%s\"", want);
	free(want);
}

static inline void t_fix_free(struct t_fix *f)
{
	if (f->acts)
		t_fix_stop(f);
	tsg_ruleset_free(f->rs);
	for (size_t i = 0; i < f->npaths; i++)
		free(f->paths[i]);
	free(f->log);
	free(f->out);
	t_rmdir(f->dir);
	memset(f, 0, sizeof(*f));
}

#endif
