/* SPDX-License-Identifier: MIT */
/* exec action: argv without a shell, environment, stdin, timeouts, queueing,
 * output capture, user switch, dry run, reaping. Real hooks (sh scripts). */
#include "act_test.h"
#include "tsg_test_main.h"

#include <signal.h>
#include <sys/wait.h>

static void assert_no_children(void)
{
	int st;

	assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* A hook that records its argv (one per line), env and stdin in the fixture's folder. */
static const char *recorder_hook(struct t_fix *f)
{
	const char *dir = t_fix_dir(f);

	return t_fix_scriptf(f, "record.sh",
			     "#!/bin/sh\n"
			     "for a in \"$@\"; do printf '%%s\\n' \"$a\"; done > '%s/argv.tmp'\n"
			     "env > '%s/env'\n"
			     "cat > '%s/stdin'\n"
			     "mv '%s/argv.tmp' '%s/argv'\n",
			     dir, dir, dir, dir, dir);
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

/* The environment lines the hook of test_exec_no_shell must see. */
static const char *const no_shell_env[] = {
	"TSG_RULE=r1",
	"TSG_STATUS=firing",
	"TSG_SEVERITY=warning",
	"TSG_COMM=; touch pwned1",
	"TSG_PID=4242",
	"TSG_RADDR=10.0.0.9",
	"TSG_RPORT=443",
	"TSG_FROM=SYN_SENT",
	"TSG_TO=CLOSE",
	"TSG_HOST=web-1",
	"TSG_LABEL_X=$(touch pwned2)",
	"TSG_LABEL_Y=`touch pwned3` \"q\" 's'",
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
};

static void test_exec_no_shell(void **state)
{
	struct t_fix f = { 0 };
	const char *hook = recorder_hook(&f), *pwned[3];
	char *argv_file, *env, *in;
	json_t *j;
	char cwd[4096];

	(void)state;
	/* a shell would run these in the hook's cwd: make that the tmp dir */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f.dir), 0);
	pwned[0] = t_fix_path(&f, "pwned1");
	pwned[1] = t_fix_path(&f, "pwned2");
	pwned[2] = t_fix_path(&f, "pwned3");
	t_fix_start(&f, NULL, "r1",
		    "actions:\n"
		    "  - name: hook\n"
		    "    type: exec\n"
		    "    argv: [%s, '{{comm}}', '{{labels.x}}', '{{labels.y}}', 'a b {{raddr}}', '', '{{rport}}']\n"
		    "rules:\n"
		    "  - name: r1\n"
		    "    labels: {x: '$(touch pwned2)', y: '`touch pwned3` \"q\" ''s'''}\n"
		    "    when: {from: SYN_SENT, to: CLOSE}\n"
		    "    actions: [hook]\n",
		    hook);
	t_fix_fire_as(&f, "; touch pwned1");
	assert_true(t_wait_done(f.acts, "hook", 1, 5000));
	assert_int_equal(t_stats(f.acts, "hook").sent, 1);
	t_fix_stop(&f);
	assert_no_children();

	argv_file = t_read(t_fix_path(&f, "argv"));
	assert_non_null(argv_file);
	assert_string_equal(argv_file, "; touch pwned1\n"
				       "$(touch pwned2)\n"
				       "`touch pwned3` \"q\" 's'\n"
				       "a b 10.0.0.9\n"
				       "\n"
				       "443\n");
	for (int i = 0; i < 3; i++)
		assert_false(t_exists(pwned[i]));

	env = t_read(t_fix_path(&f, "env"));
	assert_non_null(env);
	for (size_t i = 0; i < sizeof(no_shell_env) / sizeof(no_shell_env[0]); i++)
		if (!env_has(env, no_shell_env[i]))
			fail_msg("not in the hook's environment: %s", no_shell_env[i]);
	assert_null(strstr(env, "TSG_DURATION=")); /* the alert has no duration */

	in = t_read(t_fix_path(&f, "stdin"));
	assert_non_null(in);
	j = json_loads(in, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "rule")), "r1");
	assert_string_equal(json_string_value(json_object_get(j, "comm")), "; touch pwned1");
	assert_string_equal(json_string_value(json_object_get(j, "status")), "firing");
	json_decref(j);

	assert_int_equal(chdir(cwd), 0);
	free(argv_file);
	free(env);
	free(in);
	t_fix_free(&f);
}

/* A hook that never exits delays nothing: fire() returns at once, another
 * action completes meanwhile, the hook is killed at its timeout, and one that
 * ignores SIGTERM gets SIGKILL after the grace. */
static void test_exec_timeout(void **state)
{
	struct t_fix f = { 0 };
	const char *slow = t_fix_script(&f, "slow.sh", "#!/bin/sh\nsleep 30\n");
	const char *stubborn = t_fix_script(&f, "stubborn.sh",
					    "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.1; done\n");
	const char *fast_out = t_fix_path(&f, "fast.out");
	const char *fast = t_fix_scriptf(&f, "fast.sh", "#!/bin/sh\necho done > '%s'\n", fast_out);
	struct tsg_action_stats st;
	uint64_t t0;
	double ms;

	(void)state;
	t_fix_start(&f, NULL, "r1",
		    "actions:\n"
		    "  - {name: slow, type: exec, argv: [%s], timeout: 300ms}\n"
		    "  - {name: stubborn, type: exec, argv: [%s], timeout: 300ms}\n"
		    "  - {name: fast, type: exec, argv: [%s]}\n"
		    "rules:\n"
		    "  - name: r1\n"
		    "    when: {from: SYN_SENT, to: CLOSE}\n"
		    "    actions: [slow, stubborn, fast]\n",
		    slow, stubborn, fast);
	t0 = t_now_ns();
	tsg_actions_fire(f.acts, &f.a);
	ms = t_ms_since(t0);
	assert_true(ms < 100); /* rendering and queueing only */
	assert_true(t_wait_file(fast_out, 2000));
	assert_true(t_ms_since(t0) < 1000);
	assert_int_equal(t_stats(f.acts, "slow").queued_now, 1);
	assert_true(t_wait_done(f.acts, "slow", 1, 3000));
	st = t_stats(f.acts, "slow");
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.sent, 0);
	assert_true(t_wait_done(f.acts, "stubborn", 1, 5000));
	ms = t_ms_since(t0);
	assert_true(ms >= 2300); /* 300 ms + the 2 s grace before SIGKILL */
	st = t_stats(f.acts, "stubborn");
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(t_stats(f.acts, "fast").sent, 1);
	t_has(t_fix_stop(&f), "tsguard: error: rule r1 action slow: ",
	      "timed out after 300ms; killed with SIGTERM",
	      "tsguard: error: rule r1 action stubborn: ",
	      "timed out after 300ms; killed with SIGKILL");
	assert_no_children();
	t_fix_free(&f);
}

/* max_concurrent 1, queue 2: one runs, two wait, the rest are dropped and
 * logged; never two at once. */
static void test_exec_queue(void **state)
{
	struct t_fix f = { 0 };
	const char *started = t_fix_path(&f, "started"), *overlap = t_fix_path(&f, "overlap");
	const char *hook = t_fix_scriptf(&f, "one.sh",
					 "#!/bin/sh\n"
					 "mkdir '%s/lock' 2>/dev/null || echo overlap >> '%s'\n"
					 "echo $$ >> '%s'\n"
					 "sleep 0.3\n"
					 "rmdir '%s/lock'\n",
					 f.dir, overlap, started, f.dir);
	struct tsg_actions_opts o = { .exec_queue = 2 };
	struct tsg_action_stats st;

	(void)state;
	t_fix_start_one(&f, &o, "one", "{name: one, type: exec, argv: [%s], max_concurrent: 1}", hook);
	tsg_actions_fire(f.acts, &f.a);
	assert_true(t_wait_file(started, 2000)); /* the first one runs */
	for (int i = 0; i < 4; i++)
		tsg_actions_fire(f.acts, &f.a);
	st = t_stats(f.acts, "one");
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.queued_now, 3);
	assert_true(t_wait_done(f.acts, "one", 5, 5000));
	st = t_stats(f.acts, "one");
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.dropped, 2);
	t_has(t_fix_stop(&f), "tsguard: warning: rule r1 action one: queue full (2 queued), "
			      "notification dropped");
	assert_false(t_exists(overlap));
	assert_no_children();
	t_fix_free(&f);
}

/* stdout/stderr go to the log, bounded, prefixed with the action; the exit
 * status decides sent/failed; a missing program is a logged failure. */
static void test_exec_output_status(void **state)
{
	struct t_fix f = { 0 };
	const char *out = t_fix_script(
		&f, "out.sh", "#!/bin/sh\necho hello\necho world\necho oops >&2\nexit 3\n");
	const char *big = t_fix_script(&f, "big.sh",
				       "#!/bin/sh\nhead -c 20000 /dev/zero | tr '\\0' x\necho\n");
	const char *log;

	(void)state;
	t_fix_start(&f, NULL, "r1",
		    "actions:\n"
		    "  - {name: out, type: exec, argv: [%s]}\n"
		    "  - {name: big, type: exec, argv: [%s]}\n"
		    "  - {name: missing, type: exec, argv: [/nonexistent/hook]}\n"
		    "rules:\n"
		    "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [out, big, missing]}\n",
		    out, big);
	tsg_actions_fire(f.acts, &f.a);
	assert_true(t_wait_done(f.acts, "out", 1, 3000));
	assert_true(t_wait_done(f.acts, "big", 1, 3000));
	assert_true(t_wait_done(f.acts, "missing", 1, 3000));
	assert_int_equal(t_stats(f.acts, "out").failed, 1);
	assert_int_equal(t_stats(f.acts, "big").sent, 1);
	assert_int_equal(t_stats(f.acts, "missing").failed, 1);
	log = t_fix_stop(&f);
	t_has(log,
	      "tsguard: info: action out: stdout: hello\n"
	      "tsguard: info: action out: stdout: world\n",
	      "tsguard: info: action out: stderr: oops\n", "tsguard: error: rule r1 action out: ",
	      "out.sh exited with status 3\n",
	      "action big: stdout: (more output dropped after 4096 bytes)",
	      "tsguard: error: rule r1 action missing: cannot execute "
	      "/nonexistent/hook: No such file or directory");
	assert_null(strstr(log, "xxxxx\ntsguard: info: action big: stdout: x")); /* one line */
	assert_no_children();
	t_fix_free(&f);
}

static void test_exec_user(void **state)
{
	struct t_fix f = { 0 };

	(void)state;
	if (geteuid() != 0)
		skip();
	t_fix_start_one(&f, NULL, "asnobody", "{name: asnobody, type: exec, argv: [%s], user: nobody}",
			t_fix_script(&f, "id.sh", "#!/bin/sh\necho uid=$(id -u) gid=$(id -g)\n"));
	tsg_actions_fire(f.acts, &f.a);
	assert_true(t_wait_done(f.acts, "asnobody", 1, 3000));
	t_has(t_fix_stop(&f), "tsguard: info: action asnobody: stdout: uid=65534 gid=65534");
	assert_no_children();
	t_fix_free(&f);
}

/* Dry run prints the exact argv and environment, and runs nothing. */
static void test_exec_dry_run(void **state)
{
	struct t_fix f = { 0 };
	const char *made = t_fix_path(&f, "made");
	const char *hook = t_fix_scriptf(&f, "touch.sh", "#!/bin/sh\ntouch '%s'\n", made);
	struct tsg_actions_opts o = { .dry_run = true };

	(void)state;
	t_fix_start(&f, &o, "r1",
		    "actions:\n"
		    "  - {name: toucher, type: exec, argv: [%s, '{{comm}}', 'x \"y\"'], timeout: 10s, user: nobody}\n"
		    "rules:\n"
		    "  - {name: r1, labels: {team: edge}, when: {from: SYN_SENT, to: CLOSE}, actions: [toucher]}\n",
		    hook);
	t_fix_fire_as(&f, "a b;c");
	t_fix_stop(&f);
	t_sleep_ms(200);
	assert_false(t_exists(made));
	t_fix_out_hasf(&f, "dry-run: action toucher (exec) argv: [\"%s\",\"a b;c\",\"x \\\"y\\\"\"]\n",
		       hook);
	t_has(f.out, "dry-run: action toucher (exec) env: [\"PATH=/usr/local/sbin:",
	      "\"TSG_RULE=r1\",\"TSG_SEVERITY=warning\",\"TSG_STATUS=firing\"", "\"TSG_COMM=a b;c\"",
	      "\"TSG_LABEL_TEAM=edge\"]\n", "dry-run: action toucher (exec) stdin: {\"time\":",
	      "dry-run: action toucher (exec) timeout: 10s max_concurrent: 4 "
	      "user: \"nobody\"\n");
	assert_no_children();
	t_fix_free(&f);
}

/* tsg_actions_free while hooks run: they get their timeout, then the kill;
 * never longer. */
static void test_exec_free_bounded(void **state)
{
	struct t_fix f = { 0 };
	uint64_t t0;
	double ms;

	(void)state;
	t_fix_start_one(&f, NULL, "stuck",
			"{name: stuck, type: exec, argv: [%s], timeout: 500ms, max_concurrent: 1}",
			t_fix_script(&f, "stuck.sh", "#!/bin/sh\ntrap '' TERM\nsleep 60\n"));
	for (int i = 0; i < 3; i++) /* one runs, two wait */
		tsg_actions_fire(f.acts, &f.a);
	t_sleep_ms(100);
	t0 = t_now_ns();
	t_fix_stop(&f);
	ms = t_ms_since(t0);
	fprintf(stderr, "free took %.0f ms\n", ms);
	assert_true(ms < 500 + 2000 + 1000);
	assert_no_children();
	t_fix_free(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_exec_no_shell),     cmocka_unit_test(test_exec_timeout),
    cmocka_unit_test(test_exec_queue),	      cmocka_unit_test(test_exec_output_status),
    cmocka_unit_test(test_exec_user),	      cmocka_unit_test(test_exec_dry_run),
    cmocka_unit_test(test_exec_free_bounded),
};

TSG_TEST_MAIN(tests)
