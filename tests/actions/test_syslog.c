/* SPDX-License-Identifier: MIT */
/*
 * syslog action against a real rsyslogd. syslog(3) always talks to /dev/log,
 * so the test runs in its own mount namespace with an overlay on /dev: the
 * rsyslogd it starts creates /dev/log in the overlay only (the host's /dev,
 * and any syslog daemon it has, are untouched), writes what it receives to a
 * file in a temporary directory, and is stopped at the end. Needs root (for
 * the namespace); skipped otherwise.
 */
#include "act_test.h"

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <syslog.h>

#define RSYSLOGD "/usr/sbin/rsyslogd"

static char *dir;
static const char *no_reason; /* why the real daemon tests are skipped */
static pid_t rsyslog_pid;

/* Before any thread exists: private mount namespace, overlay on /dev. */
static const char *ns_setup(void)
{
	static char why[256];
	char *up = t_path(dir, "dev-up"), *work = t_path(dir, "dev-work"), *opts;
	int err = 0;

	if (geteuid() != 0)
		return "not root";
	if (access(RSYSLOGD, X_OK) != 0)
		return RSYSLOGD " not installed";
	mkdir(up, 0755);
	mkdir(work, 0755);
	assert_true(asprintf(&opts, "lowerdir=/dev,upperdir=%s,workdir=%s", up, work) > 0);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("overlay", "/dev", "overlay", 0, opts) < 0)
		err = errno;
	free(opts);
	free(up);
	free(work);
	if (err) {
		snprintf(why, sizeof(why), "private /dev: %s", strerror(err));
		return why;
	}
	return NULL;
}

static int rsyslog_start(void **state)
{
	char *conf = t_path(dir, "rsyslog.conf"), *text, *pidf = t_path(dir, "rsyslog.pid");
	char *log = t_path(dir, "rsyslogd.log"), *spool = t_path(dir, "spool");
	struct stat st;

	(void)state;
	if (no_reason)
		return 0;
	mkdir(spool, 0700);
	assert_true(asprintf(&text,
			     "global(workDirectory=\"%s\")\n"
			     "module(load=\"imuxsock\" SysSock.Name=\"/dev/log\" SysSock.Unlink=\"on\"\n"
			     "       SysSock.RateLimit.Interval=\"0\")\n"
			     "template(name=\"t\" type=\"string\"\n"
			     "         string=\"%%syslogfacility-text%%.%%syslogseverity-text%% "
			     "%%programname%%[%%procid%%]:%%msg%%\\n\")\n"
			     "if $programname startswith \"tsg\" then action(type=\"omfile\" "
			     "file=\"%s/messages\" template=\"t\")\n",
			     spool, dir) > 0);
	t_write(conf, text, 0644);
	rsyslog_pid = fork();
	assert_true(rsyslog_pid >= 0);
	if (rsyslog_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(RSYSLOGD, RSYSLOGD, "-n", "-f", conf, "-i", pidf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) { /* up to 5 s for the socket */
		if (stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode))
			break;
		t_sleep_ms(50);
	}
	if (stat("/dev/log", &st) != 0) {
		char *l = t_read(log);
		fprintf(stderr, "rsyslogd did not create /dev/log:\n%s\n", l ? l : "");
		free(l);
		no_reason = "rsyslogd did not start";
	}
	free(conf);
	free(text);
	free(pidf);
	free(log);
	free(spool);
	return 0;
}

static int rsyslog_stop(void **state)
{
	int st;

	(void)state;
	if (rsyslog_pid > 0) {
		kill(rsyslog_pid, SIGTERM);
		for (int i = 0; i < 50 && rsyslog_pid; i++) {
			if (waitpid(rsyslog_pid, &st, WNOHANG) == rsyslog_pid)
				rsyslog_pid = 0;
			else
				t_sleep_ms(100);
		}
		if (rsyslog_pid) {
			kill(rsyslog_pid, SIGKILL);
			waitpid(rsyslog_pid, &st, 0);
		}
	}
	return 0;
}

static const char *yaml_text =
	"actions:\n"
	"  - {name: log-text, type: syslog, facility: local3, ident: tsg-text, format: text}\n"
	"  - {name: log-json, type: syslog, ident: tsg-json, format: json}\n"
	"rules:\n"
	"  - {name: r-crit, severity: critical, when: {from: SYN_SENT, to: CLOSE}, actions: [log-text, log-json]}\n"
	"  - {name: r-notice, severity: notice, when: {from: SYN_SENT, to: CLOSE}, actions: [log-text]}\n";

/* The line of `messages` that starts with prefix (its message part), or NULL. */
static char *find_line(const char *all, const char *prefix)
{
	const char *p = strstr(all, prefix);
	const char *e;

	if (!p)
		return NULL;
	p += strlen(prefix);
	if (*p == ' ')
		p++;
	e = strchr(p, '\n');
	return strndup(p, e ? (size_t)(e - p) : strlen(p));
}

static void test_syslog_real_daemon(void **state)
{
	char *msgs = t_path(dir, "messages"), *all = NULL, *line, *want_j;
	char want[2048], prefix[128];
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct tsg_alert a, b;
	json_t *j;

	(void)state;
	if (no_reason) {
		fprintf(stderr, "skipped: %s\n", no_reason);
		free(msgs);
		skip();
	}
	rs = t_rules(yaml_text);
	assert_int_equal(tsg_actions_new(rs, NULL, &acts), 0);
	t_alert(&a, rs, "r-crit", TSG_FIRING);
	snprintf(a.info.comm, sizeof(a.info.comm), "curl \"x\" ü");
	t_alert(&b, rs, "r-notice", TSG_RESOLVED);
	tsg_actions_fire(acts, &a);
	tsg_actions_fire(acts, &b);
	assert_true(t_wait_done(acts, "log-text", 2, 3000));
	assert_true(t_wait_done(acts, "log-json", 1, 3000));
	assert_int_equal(t_stats(acts, "log-text").sent, 2);
	assert_int_equal(t_stats(acts, "log-json").sent, 1);
	for (int i = 0; i < 100; i++) { /* rsyslogd writes asynchronously */
		free(all);
		all = t_read(msgs);
		if (all && strstr(all, "tsg-json") && strstr(all, "local3.notice"))
			break;
		t_sleep_ms(50);
	}
	assert_non_null(all);
	fprintf(stderr, "rsyslogd wrote:\n%s", all);

	/* text: facility local3, severity from the rule, ident, our pid */
	snprintf(prefix, sizeof(prefix), "local3.crit tsg-text[%d]:", (int)getpid());
	line = find_line(all, prefix);
	assert_non_null(line);
	assert_string_equal(line, tsg_alert_to_text(&a, want, sizeof(want)));
	free(line);
	snprintf(prefix, sizeof(prefix), "local3.notice tsg-text[%d]:", (int)getpid());
	line = find_line(all, prefix);
	assert_non_null(line);
	assert_string_equal(line, tsg_alert_to_text(&b, want, sizeof(want)));
	assert_non_null(strstr(line, "RESOLVED"));
	free(line);

	/* json: the alert object, compact, default facility daemon */
	snprintf(prefix, sizeof(prefix), "daemon.crit tsg-json[%d]:", (int)getpid());
	line = find_line(all, prefix);
	assert_non_null(line);
	want_j = tsg_alert_json_dumps(&a);
	assert_string_equal(line, want_j);
	j = json_loads(line, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "comm")), "curl \"x\" ü");
	json_decref(j);
	free(want_j);
	free(line);

	tsg_actions_free(acts);
	tsg_ruleset_free(rs);
	free(all);
	free(msgs);
}

static void test_syslog_dry_run(void **state)
{
	struct tsg_actions_opts o = { .dry_run = true };
	char *sub = t_tmpdir(), *outp = t_path(sub, "dry.out"), *out, *q, want[4096], text[2048];
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct tsg_alert a;
	json_t *j;

	(void)state;
	rs = t_rules(yaml_text);
	o.dry_out = fopen(outp, "w");
	assert_non_null(o.dry_out);
	assert_int_equal(tsg_actions_new(rs, &o, &acts), 0);
	t_alert(&a, rs, "r-crit", TSG_FIRING);
	tsg_actions_fire(acts, &a);
	tsg_actions_free(acts);
	fclose(o.dry_out);
	out = t_read(outp);
	fputs(out, stderr);
	j = json_string(tsg_alert_to_text(&a, text, sizeof(text)));
	q = json_dumps(j, JSON_ENCODE_ANY);
	json_decref(j);
	snprintf(want, sizeof(want),
		 "dry-run: action log-text (syslog) priority: local3.crit (%d) ident: \"tsg-text\" "
		 "line: %s\n",
		 LOG_LOCAL3 | LOG_CRIT, q);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "dry-run: action log-json (syslog) priority: daemon.crit (26) "
				    "ident: \"tsg-json\" line: \"{\\\"time\\\":"));
	free(q);
	free(out);
	free(outp);
	tsg_ruleset_free(rs);
	t_rmdir(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_syslog_real_daemon, rsyslog_start,
						rsyslog_stop),
		cmocka_unit_test(test_syslog_dry_run),
	};
	int ret;

	dir = t_tmpdir();
	no_reason = ns_setup();
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	if (!no_reason)
		umount2("/dev", MNT_DETACH);
	t_rmdir(dir);
	return ret;
}
