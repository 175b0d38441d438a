/* SPDX-License-Identifier: MIT */
/* webhook format alertmanager against real Alertmanagers that the test
 * starts (loopback, private config and storage) and stops: a firing alert
 * shows up active in GET /api/v2/alerts, stays active past its endsAt thanks
 * to the re-sends, and is no longer active after the resolved notification;
 * one action with two URLs reaches both Alertmanagers. */
#include "act_test.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define AM_BIN "/usr/bin/prometheus-alertmanager"

struct am {
	char *dir;
	pid_t pid;
	uint16_t port;
	char base[64];
};

static struct am ams[2];
static struct am *const am0 = &ams[0];

static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

struct buf {
	char *p;
	size_t n;
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct buf *b = arg;

	b->p = realloc(b->p, b->n + sz * n + 1);
	memcpy(b->p + b->n, p, sz * n);
	b->n += sz * n;
	b->p[b->n] = 0;
	return sz * n;
}

/* GET base+path; the body (malloc'd) on HTTP 200, else NULL. */
static char *http_get(const struct am *m, const char *path)
{
	struct buf b = { 0 };
	char url[256];
	long code = 0;
	CURL *c = curl_easy_init();
	CURLcode rc;

	snprintf(url, sizeof(url), "%s%s", m->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK || code != 200) {
		free(b.p);
		return NULL;
	}
	return b.p ? b.p : strdup("");
}

/* One Alertmanager of its own: own port, config, storage; no cluster. */
static int am_start_one(struct am *m)
{
	char *cfg, *data, *log, *port_arg, *cfg_arg, *data_arg;
	char *body = NULL;

	m->dir = t_tmpdir();
	cfg = t_path(m->dir, "am.yml");
	data = t_path(m->dir, "data");
	log = t_path(m->dir, "am.log");
	mkdir(data, 0700);
	t_write(cfg,
		"route:\n"
		"  receiver: blackhole\n"
		"  group_wait: 1s\n"
		"receivers:\n"
		"  - name: blackhole\n",
		0644);
	m->port = free_port();
	snprintf(m->base, sizeof(m->base), "http://127.0.0.1:%u", m->port);
	assert_true(asprintf(&port_arg, "--web.listen-address=127.0.0.1:%u", m->port) > 0);
	assert_true(asprintf(&cfg_arg, "--config.file=%s", cfg) > 0);
	assert_true(asprintf(&data_arg, "--storage.path=%s", data) > 0);
	m->pid = fork();
	assert_true(m->pid >= 0);
	if (m->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execl(AM_BIN, AM_BIN, cfg_arg, data_arg, port_arg, "--cluster.listen-address=",
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && !body; i++) { /* up to 20 s */
		body = http_get(m, "/-/ready");
		if (!body)
			t_sleep_ms(100);
	}
	free(body);
	if (!body) {
		char *l = t_read(log);
		fprintf(stderr, "alertmanager did not become ready:\n%s\n", l ? l : "");
		free(l);
	}
	free(cfg);
	free(data);
	free(log);
	free(port_arg);
	free(cfg_arg);
	free(data_arg);
	return body ? 0 : -1;
}

static int am_start(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (access(AM_BIN, X_OK) != 0) {
		fprintf(stderr, "%s not installed: skipping\n", AM_BIN);
		return 0;
	}
	for (size_t i = 0; i < 2; i++)
		if (am_start_one(&ams[i]) < 0)
			return -1;
	return 0;
}

static void am_stop_one(struct am *m)
{
	int st;

	if (m->pid > 0) {
		kill(m->pid, SIGTERM);
		for (int i = 0; i < 50; i++) {
			if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
				m->pid = 0;
				break;
			}
			t_sleep_ms(100);
		}
		if (m->pid > 0) {
			kill(m->pid, SIGKILL);
			waitpid(m->pid, &st, 0);
		}
	}
	if (m->dir)
		t_rmdir(m->dir);
	m->dir = NULL;
}

static int am_stop(void **state)
{
	(void)state;
	for (size_t i = 0; i < 2; i++)
		am_stop_one(&ams[i]);
	curl_global_cleanup();
	return 0;
}

/* The alert with this alertname in GET /api/v2/alerts (new ref), or NULL. */
static json_t *am_find(const struct am *m, const char *alertname)
{
	char *body = http_get(m, "/api/v2/alerts");
	json_t *arr, *found = NULL, *it;
	size_t i;

	if (!body)
		return NULL;
	arr = json_loads(body, 0, NULL);
	free(body);
	json_array_foreach(arr, i, it) {
		const char *n = json_string_value(json_object_get(json_object_get(it, "labels"),
								   "alertname"));
		if (n && !strcmp(n, alertname)) {
			found = json_incref(it);
			break;
		}
	}
	json_decref(arr);
	return found;
}

static json_t *am_wait(const struct am *m, const char *alertname, bool present, long ms)
{
	for (long t = 0; t <= ms; t += 100) {
		json_t *a = am_find(m, alertname);

		if (a && present)
			return a;
		if (!a && !present)
			return NULL;
		json_decref(a);
		t_sleep_ms(100);
	}
	return present ? NULL : am_find(m, alertname);
}

static void show(const char *what, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	fprintf(stderr, "%s: %s\n", what, s);
	free(s);
}

static const char *lbl(json_t *a, const char *name)
{
	return json_string_value(json_object_get(json_object_get(a, "labels"), name));
}

static void test_alertmanager_lifecycle(void **state)
{
	struct tsg_actions_opts o = { .am_resend_ns = 1000000000ull };
	struct tsg_action_stats st;
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct tsg_alert a, ev;
	json_t *got;
	uint64_t sent;

	(void)state;
	if (!am0->pid)
		skip(); /* no Alertmanager installed */
	rs = t_rulesf("actions:\n"
		      "  - {name: am, type: webhook, format: alertmanager, url: '%s/api/v2/alerts'}\n"
		      "rules:\n"
		      "  - name: slow-connect\n"
		      "    description: outbound connect stuck in SYN_SENT\n"
		      "    severity: critical\n"
		      "    labels: {team: edge}\n"
		      "    when: {state: SYN_SENT, longer_than: 500ms}\n"
		      "    actions: [am]\n"
		      "  - name: conn-failed\n"
		      "    when: {from: SYN_SENT, to: CLOSE}\n"
		      "    actions: [am]\n",
		      am0->base);
	assert_int_equal(tsg_actions_new(rs, &o, &acts), 0);

	t_alert_long(&a, rs, "slow-connect", TSG_FIRING, TSG_SYN_SENT, 500000000ull);
	tsg_actions_fire(acts, &a);
	t_alert(&ev, rs, "conn-failed", TSG_FIRING);
	tsg_actions_fire(acts, &ev);

	got = am_wait(am0, "slow-connect", true, 5000);
	assert_non_null(got);
	show("alertmanager has", got);
	assert_string_equal(json_string_value(json_object_get(json_object_get(got, "status"),
							      "state")),
			    "active");
	assert_string_equal(lbl(got, "severity"), "critical");
	assert_string_equal(lbl(got, "team"), "edge");
	assert_string_equal(lbl(got, "instance"), "web-1");
	assert_string_equal(lbl(got, "raddr"), "10.0.0.9");
	assert_string_equal(lbl(got, "rport"), "443");
	assert_string_equal(json_string_value(json_object_get(json_object_get(got, "annotations"),
							      "description")),
			    "outbound connect stuck in SYN_SENT");
	json_decref(got);
	got = am_wait(am0, "conn-failed", true, 5000);
	assert_non_null(got);
	json_decref(got);

	/* endsAt of one send is now + 4 s: 5.5 s later only re-sends keep it */
	t_sleep_ms(5500);
	got = am_find(am0, "slow-connect");
	assert_non_null(got);
	assert_string_equal(json_string_value(json_object_get(json_object_get(got, "status"),
							      "state")),
			    "active");
	json_decref(got);
	st = t_stats(acts, "am");
	fprintf(stderr, "sent %llu failed %llu\n", (unsigned long long)st.sent,
		(unsigned long long)st.failed);
	assert_true(st.sent >= 2 + 4);
	assert_int_equal(st.failed, 0);

	/* resolved: endsAt = the resolve time; no longer active */
	t_alert_long(&a, rs, "slow-connect", TSG_RESOLVED, TSG_SYN_SENT, 6000000000ull);
	tsg_actions_fire(acts, &a);
	got = am_wait(am0, "slow-connect", false, 5000);
	if (got)
		show("still there", got);
	assert_null(got);
	/* and it stays gone: no re-send after the resolve */
	assert_true(t_wait_done(acts, "am", 0, 2000));
	sent = t_stats(acts, "am").sent;
	t_sleep_ms(2500);
	got = am_find(am0, "slow-connect");
	assert_null(got);
	assert_int_equal(t_stats(acts, "am").sent, sent);
	tsg_actions_free(acts);
	tsg_ruleset_free(rs);
}

/* One action, url: [AM 1, AM 2]: both get the firing alert, keep it active by
 * the re-sends, and both see it resolved; each URL counts its own sends. */
static void test_alertmanager_two(void **state)
{
	struct tsg_actions_opts o = { .am_resend_ns = 1000000000ull };
	char url[2][96];
	struct tsg_action_stats st, su[2];
	struct tsg_actions *acts;
	struct tsg_ruleset *rs;
	struct tsg_alert a;
	json_t *got;

	(void)state;
	if (!am0->pid)
		skip(); /* no Alertmanager installed */
	for (size_t i = 0; i < 2; i++)
		snprintf(url[i], sizeof(url[i]), "%s/api/v2/alerts", ams[i].base);
	rs = t_rulesf("actions:\n"
		      "  - name: am\n"
		      "    type: webhook\n"
		      "    format: alertmanager\n"
		      "    url: ['%s', '%s']\n"
		      "rules:\n"
		      "  - name: two-slow\n"
		      "    when: {state: SYN_SENT, longer_than: 500ms}\n"
		      "    actions: [am]\n",
		      url[0], url[1]);
	assert_int_equal(tsg_actions_new(rs, &o, &acts), 0);
	t_alert_long(&a, rs, "two-slow", TSG_FIRING, TSG_SYN_SENT, 500000000ull);
	tsg_actions_fire(acts, &a);
	for (size_t i = 0; i < 2; i++) {
		got = am_wait(&ams[i], "two-slow", true, 5000);
		assert_non_null(got);
		show(ams[i].base, got);
		assert_string_equal(json_string_value(json_object_get(
					    json_object_get(got, "status"), "state")),
				    "active");
		assert_string_equal(lbl(got, "raddr"), "10.0.0.9");
		json_decref(got);
	}
	t_sleep_ms(2500); /* a re-send or two to each */
	a.status = TSG_RESOLVED;
	a.duration_ns = 3000000000ull;
	tsg_actions_fire(acts, &a);
	for (size_t i = 0; i < 2; i++) {
		got = am_wait(&ams[i], "two-slow", false, 5000);
		if (got)
			show("still there", got);
		assert_null(got);
	}
	assert_true(t_wait_done(acts, "am", 0, 2000));
	st = t_stats(acts, "am");
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(tsg_actions_get_url_stats(acts, "am", url[i], &su[i]), 0);
		fprintf(stderr, "%s: sent %llu failed %llu\n", url[i],
			(unsigned long long)su[i].sent, (unsigned long long)su[i].failed);
		assert_true(su[i].sent >= 3); /* firing, a re-send, resolved */
		assert_int_equal(su[i].failed, 0);
	}
	assert_int_equal(st.sent, su[0].sent + su[1].sent);
	assert_int_equal(tsg_actions_get_url_stats(acts, "am", "http://127.0.0.1:1/", NULL),
			 -ENOENT);
	tsg_actions_free(acts);
	tsg_ruleset_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alertmanager_lifecycle),
		cmocka_unit_test(test_alertmanager_two),
	};

	return cmocka_run_group_tests(tests, am_start, am_stop);
}
