/* SPDX-License-Identifier: MIT */
/* exec action: argv without a shell, environment, stdin, timeouts, queueing,
 * output capture, user switch, dry run, reaping. Real hooks (sh scripts). */
#include "act_test.h"

#include <signal.h>
#include <sys/wait.h>

static void assert_no_children(void)
{
	int st;

	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* A hook that records its argv (one per line), env and stdin in dir. */
static char *recorder_hook(const char *dir)
{
	char *path = t_path(dir, "record.sh"), *text;

	assert_true(asprintf(&text,
			     "#!/bin/sh\n"
			     "for a in \"$@\"; do printf '%%s\\n' \"$a\"; done > '%s/argv.tmp'\n"
			     "env > '%s/env'\n"
			     "cat > '%s/stdin'\n"
			     "mv '%s/argv.tmp' '%s/argv'\n",
			     dir, dir, dir, dir, dir) > 0);
	t_write(path, text, 0755);
	free(text);
	return path;
}

static bool env_has(const char *env, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = env; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		if (len == n && !memcmp(p, line, n))
			return true;
		p = nl ? nl + 1 : p + len;
	}
	return false;
}

static void test_exec_no_shell(void **state)
{
	char *dir = t_tmpdir(), *hook = recorder_hook(dir), *argv_file, *env, *in;
	char *argv_path = t_path(dir, "argv"), *pwned[3];
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct tsg_alert a;
	json_t *j;
	char cwd[4096];

	(void)state;
	/* a shell would run these in the hook's cwd: make that the tmp dir */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	pwned[0] = t_path(dir, "pwned1");
	pwned[1] = t_path(dir, "pwned2");
	pwned[2] = t_path(dir, "pwned3");
	rs = t_rulesf("actions:\n"
		      "  - name: hook\n"
		      "    type: exec\n"
		      "    argv: [%s, '{{comm}}', '{{labels.x}}', '{{labels.y}}', 'a b {{raddr}}', '', '{{rport}}']\n"
		      "rules:\n"
		      "  - name: r1\n"
		      "    labels: {x: '$(touch pwned2)', y: '`touch pwned3` \"q\" ''s'''}\n"
		      "    when: {from: SYN_SENT, to: CLOSE}\n"
		      "    actions: [hook]\n",
		      hook);
	acts = t_actions(rs, NULL, &a, "r1");
	snprintf(a.info.comm, sizeof(a.info.comm), "; touch pwned1");
	tsg_actions_fire(acts, &a);
	assert_true(t_wait_done(acts, "hook", 1, 5000));
	assert_int_equal(t_stats(acts, "hook").sent, 1);
	tsg_actions_free(acts);
	assert_no_children();

	argv_file = t_read(argv_path);
	assert_non_null(argv_file);
	assert_string_equal(argv_file, "; touch pwned1\n"
				       "$(touch pwned2)\n"
				       "`touch pwned3` \"q\" 's'\n"
				       "a b 10.0.0.9\n"
				       "\n"
				       "443\n");
	for (int i = 0; i < 3; i++)
		assert_false(t_exists(pwned[i]));

	free(argv_path);
	argv_path = t_path(dir, "env");
	env = t_read(argv_path);
	assert_non_null(env);
	assert_true(env_has(env, "TSG_RULE=r1"));
	assert_true(env_has(env, "TSG_STATUS=firing"));
	assert_true(env_has(env, "TSG_SEVERITY=warning"));
	assert_true(env_has(env, "TSG_COMM=; touch pwned1"));
	assert_true(env_has(env, "TSG_PID=4242"));
	assert_true(env_has(env, "TSG_RADDR=10.0.0.9"));
	assert_true(env_has(env, "TSG_RPORT=443"));
	assert_true(env_has(env, "TSG_FROM=SYN_SENT"));
	assert_true(env_has(env, "TSG_TO=CLOSE"));
	assert_true(env_has(env, "TSG_HOST=web-1"));
	assert_true(env_has(env, "TSG_LABEL_X=$(touch pwned2)"));
	assert_true(env_has(env, "TSG_LABEL_Y=`touch pwned3` \"q\" 's'"));
	assert_true(env_has(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	assert_null(strstr(env, "TSG_DURATION=")); /* the alert has no duration */

	free(argv_path);
	argv_path = t_path(dir, "stdin");
	in = t_read(argv_path);
	assert_non_null(in);
	j = json_loads(in, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "rule")), "r1");
	assert_string_equal(json_string_value(json_object_get(j, "comm")), "; touch pwned1");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "firing");
	json_decref(j);

	assert_int_equal(chdir(cwd), 0);
	tsg_ruleset_free(rs);
	free(argv_file);
	free(env);
	free(in);
	free(hook);
	free(argv_path);
	for (int i = 0; i < 3; i++)
		free(pwned[i]);
	t_rmdir(dir);
}

/* A hook that never exits delays nothing: fire() returns at once, another
 * action completes meanwhile, the hook is killed at its timeout, and one that
 * ignores SIGTERM gets SIGKILL after the grace. */
static void test_exec_timeout(void **state)
{
	char *dir = t_tmpdir(), *log;
	char *slow = t_path(dir, "slow.sh"), *stubborn = t_path(dir, "stubborn.sh");
	char *fast = t_path(dir, "fast.sh"), *fast_out = t_path(dir, "fast.out"), *text;
	struct tsg_action_stats st;
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct t_capture cap;
	struct tsg_alert a;
	uint64_t t0;
	double ms;

	(void)state;
	t_write(slow, "#!/bin/sh\nsleep 30\n", 0755);
	t_write(stubborn, "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n", 0755);
	assert_true(asprintf(&text, "#!/bin/sh\necho done > '%s'\n", fast_out) > 0);
	t_write(fast, text, 0755);
	rs = t_rulesf("actions:\n"
		      "  - {name: slow, type: exec, argv: [%s], timeout: 300ms}\n"
		      "  - {name: stubborn, type: exec, argv: [%s], timeout: 300ms}\n"
		      "  - {name: fast, type: exec, argv: [%s]}\n"
		      "rules:\n"
		      "  - name: r1\n"
		      "    when: {from: SYN_SENT, to: CLOSE}\n"
		      "    actions: [slow, stubborn, fast]\n",
		      slow, stubborn, fast);
	acts = t_actions(rs, NULL, &a, "r1");
	t_capture_begin(&cap);
	t0 = t_now_ns();
	tsg_actions_fire(acts, &a);
	ms = t_ms_since(t0);
	assert_true(ms < 100); /* rendering and queueing only */
	assert_true(t_wait_file(fast_out, 2000));
	assert_true(t_ms_since(t0) < 1000);
	assert_int_equal(t_stats(acts, "slow").queued_now, 1);
	assert_true(t_wait_done(acts, "slow", 1, 3000));
	st = t_stats(acts, "slow");
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.sent, 0);
	assert_true(t_wait_done(acts, "stubborn", 1, 5000));
	ms = t_ms_since(t0);
	assert_true(ms >= 2300); /* 300 ms + the 2 s grace before SIGKILL */
	st = t_stats(acts, "stubborn");
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(t_stats(acts, "fast").sent, 1);
	tsg_actions_free(acts);
	log = t_capture_end(&cap);
	assert_non_null(strstr(log, "tsguard: error: rule r1 action slow: "));
	assert_non_null(strstr(log, "timed out after 300ms; killed with SIGTERM"));
	assert_non_null(strstr(log, "tsguard: error: rule r1 action stubborn: "));
	assert_non_null(strstr(log, "timed out after 300ms; killed with SIGKILL"));
	assert_no_children();
	free(log);
	free(text);
	free(slow);
	free(stubborn);
	free(fast);
	free(fast_out);
	tsg_ruleset_free(rs);
	t_rmdir(dir);
}

/* max_concurrent 1, queue 2: one runs, two wait, the rest are dropped and
 * logged; never two at once. */
static void test_exec_queue(void **state)
{
	char *dir = t_tmpdir(), *text, *log;
	char *hook = t_path(dir, "one.sh"), *started = t_path(dir, "started");
	char *overlap = t_path(dir, "overlap");
	struct tsg_actions_opts o = { .exec_queue = 2 };
	struct tsg_action_stats st;
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct t_capture cap;
	struct tsg_alert a;

	(void)state;
	assert_true(asprintf(&text,
			     "#!/bin/sh\n"
			     "mkdir '%s/lock' 2>/dev/null || echo overlap >> '%s'\n"
			     "echo $$ >> '%s'\n"
			     "sleep 0.3\n"
			     "rmdir '%s/lock'\n",
			     dir, overlap, started, dir) > 0);
	t_write(hook, text, 0755);
	rs = t_rulesf("actions:\n"
		      "  - {name: one, type: exec, argv: [%s], max_concurrent: 1}\n"
		      "rules:\n"
		      "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [one]}\n",
		      hook);
	acts = t_actions(rs, &o, &a, "r1");
	t_capture_begin(&cap);
	tsg_actions_fire(acts, &a);
	assert_true(t_wait_file(started, 2000)); /* the first one runs */
	for (int i = 0; i < 4; i++)
		tsg_actions_fire(acts, &a);
	st = t_stats(acts, "one");
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.queued_now, 3);
	assert_true(t_wait_done(acts, "one", 5, 5000));
	st = t_stats(acts, "one");
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.dropped, 2);
	tsg_actions_free(acts);
	log = t_capture_end(&cap);
	assert_non_null(strstr(log, "tsguard: warning: rule r1 action one: queue full (2 queued), "
				    "notification dropped"));
	assert_false(t_exists(overlap));
	assert_no_children();
	free(log);
	free(text);
	free(hook);
	free(started);
	free(overlap);
	tsg_ruleset_free(rs);
	t_rmdir(dir);
}

/* stdout/stderr go to the log, bounded, prefixed with the action; the exit
 * status decides sent/failed; a missing program is a logged failure. */
static void test_exec_output_status(void **state)
{
	char *dir = t_tmpdir(), *log;
	char *out = t_path(dir, "out.sh"), *big = t_path(dir, "big.sh");
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct t_capture cap;
	struct tsg_alert a;

	(void)state;
	t_write(out, "#!/bin/sh\necho hello\necho world\necho oops >&2\nexit 3\n", 0755);
	t_write(big, "#!/bin/sh\nhead -c 20000 /dev/zero | tr '\\0' x\necho\n", 0755);
	rs = t_rulesf("actions:\n"
		      "  - {name: out, type: exec, argv: [%s]}\n"
		      "  - {name: big, type: exec, argv: [%s]}\n"
		      "  - {name: missing, type: exec, argv: [/nonexistent/hook]}\n"
		      "rules:\n"
		      "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [out, big, missing]}\n",
		      out, big);
	acts = t_actions(rs, NULL, &a, "r1");
	t_capture_begin(&cap);
	tsg_actions_fire(acts, &a);
	assert_true(t_wait_done(acts, "out", 1, 3000));
	assert_true(t_wait_done(acts, "big", 1, 3000));
	assert_true(t_wait_done(acts, "missing", 1, 3000));
	assert_int_equal(t_stats(acts, "out").failed, 1);
	assert_int_equal(t_stats(acts, "big").sent, 1);
	assert_int_equal(t_stats(acts, "missing").failed, 1);
	tsg_actions_free(acts);
	log = t_capture_end(&cap);
	assert_non_null(strstr(log, "tsguard: info: action out: stdout: hello\n"
				    "tsguard: info: action out: stdout: world\n"));
	assert_non_null(strstr(log, "tsguard: info: action out: stderr: oops\n"));
	assert_non_null(strstr(log, "tsguard: error: rule r1 action out: "));
	assert_non_null(strstr(log, "out.sh exited with status 3\n"));
	assert_non_null(strstr(log, "action big: stdout: (more output dropped after 4096 bytes)"));
	assert_null(strstr(log, "xxxxx\ntsguard: info: action big: stdout: x")); /* one line */
	assert_non_null(strstr(log, "tsguard: error: rule r1 action missing: cannot execute "
				    "/nonexistent/hook: No such file or directory"));
	assert_no_children();
	free(log);
	free(out);
	free(big);
	tsg_ruleset_free(rs);
	t_rmdir(dir);
}

static void test_exec_user(void **state)
{
	char *dir = t_tmpdir(), *log;
	char *hook = t_path(dir, "id.sh");
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct t_capture cap;
	struct tsg_alert a;

	(void)state;
	if (geteuid() != 0) {
		t_rmdir(dir);
		free(hook);
		skip();
	}
	t_write(hook, "#!/bin/sh\necho uid=$(id -u) gid=$(id -g)\n", 0755);
	rs = t_rulesf("actions:\n"
		      "  - {name: asnobody, type: exec, argv: [%s], user: nobody}\n"
		      "rules:\n"
		      "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [asnobody]}\n",
		      hook);
	acts = t_actions(rs, NULL, &a, "r1");
	t_capture_begin(&cap);
	tsg_actions_fire(acts, &a);
	assert_true(t_wait_done(acts, "asnobody", 1, 3000));
	tsg_actions_free(acts);
	log = t_capture_end(&cap);
	assert_non_null(strstr(log, "tsguard: info: action asnobody: stdout: uid=65534 gid=65534"));
	assert_no_children();
	free(log);
	free(hook);
	tsg_ruleset_free(rs);
	t_rmdir(dir);
}

/* Dry run prints the exact argv and environment, and runs nothing. */
static void test_exec_dry_run(void **state)
{
	char *dir = t_tmpdir(), *outp = t_path(dir, "dry.out"), *out;
	char *hook = t_path(dir, "touch.sh"), *made = t_path(dir, "made"), *text, *want;
	struct tsg_actions_opts o = { .dry_run = true };
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct tsg_alert a;

	(void)state;
	assert_true(asprintf(&text, "#!/bin/sh\ntouch '%s'\n", made) > 0);
	t_write(hook, text, 0755);
	rs = t_rulesf("actions:\n"
		      "  - {name: toucher, type: exec, argv: [%s, '{{comm}}', 'x \"y\"'], timeout: 10s, user: nobody}\n"
		      "rules:\n"
		      "  - {name: r1, labels: {team: edge}, when: {from: SYN_SENT, to: CLOSE}, actions: [toucher]}\n",
		      hook);
	o.dry_out = fopen(outp, "w");
	assert_non_null(o.dry_out);
	acts = t_actions(rs, &o, &a, "r1");
	snprintf(a.info.comm, sizeof(a.info.comm), "a b;c");
	tsg_actions_fire(acts, &a);
	tsg_actions_free(acts);
	fclose(o.dry_out);
	t_sleep_ms(200);
	assert_false(t_exists(made));
	out = t_read(outp);
	fputs(out, stderr);
	assert_true(asprintf(&want, "dry-run: action toucher (exec) argv: [\"%s\",\"a b;c\",\"x \\\"y\\\"\"]\n",
			     hook) > 0);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "dry-run: action toucher (exec) env: [\"PATH=/usr/local/sbin:"));
	assert_non_null(strstr(out, "\"TSG_RULE=r1\",\"TSG_SEVERITY=warning\",\"TSG_STATUS=firing\""));
	assert_non_null(strstr(out, "\"TSG_COMM=a b;c\""));
	assert_non_null(strstr(out, "\"TSG_LABEL_TEAM=edge\"]\n"));
	assert_non_null(strstr(out, "dry-run: action toucher (exec) stdin: {\"time\":"));
	assert_non_null(strstr(out, "dry-run: action toucher (exec) timeout: 10s max_concurrent: 4 "
				    "user: \"nobody\"\n"));
	assert_no_children();
	free(want);
	free(out);
	free(text);
	free(outp);
	free(hook);
	free(made);
	tsg_ruleset_free(rs);
	t_rmdir(dir);
}

/* tsg_actions_free while hooks run: they get their timeout, then the kill;
 * never longer. */
static void test_exec_free_bounded(void **state)
{
	char *dir = t_tmpdir(), *hook = t_path(dir, "stuck.sh");
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct tsg_alert a;
	uint64_t t0;
	double ms;

	(void)state;
	t_write(hook, "#!/bin/sh\ntrap '' TERM\nsleep 60\n", 0755);
	rs = t_rulesf("actions:\n"
		      "  - {name: stuck, type: exec, argv: [%s], timeout: 500ms, max_concurrent: 1}\n"
		      "rules:\n"
		      "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [stuck]}\n",
		      hook);
	acts = t_actions(rs, NULL, &a, "r1");
	for (int i = 0; i < 3; i++) /* one runs, two wait */
		tsg_actions_fire(acts, &a);
	t_sleep_ms(100);
	t0 = t_now_ns();
	tsg_actions_free(acts);
	ms = t_ms_since(t0);
	fprintf(stderr, "free took %.0f ms\n", ms);
	assert_true(ms < 500 + 2000 + 1000);
	assert_no_children();
	free(hook);
	tsg_ruleset_free(rs);
	t_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_no_shell),
		cmocka_unit_test(test_exec_timeout),
		cmocka_unit_test(test_exec_queue),
		cmocka_unit_test(test_exec_output_status),
		cmocka_unit_test(test_exec_user),
		cmocka_unit_test(test_exec_dry_run),
		cmocka_unit_test(test_exec_free_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
