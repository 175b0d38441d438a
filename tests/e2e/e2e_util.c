/* SPDX-License-Identifier: MIT */
#include "e2e_util.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 64
#define MAX_EVENTS (4u << 20)

struct e2e_events e2e_ev;
static pid_t children[MAX_CHILDREN];
static int nchildren;
static char rules_dir[64];
static char rules_file[128];
static bool is_parent = true;

uint64_t e2e_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void e2e_cleanup(void)
{
	if (!is_parent)
		return;
	for (int i = 0; i < nchildren; i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
	nchildren = 0;
	if (rules_file[0]) {
		unlink(rules_file);
		rules_file[0] = 0;
	}
	if (rules_dir[0]) {
		rmdir(rules_dir);
		rules_dir[0] = 0;
	}
}

static void lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0, "socket: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	CHECK(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0, "SIOCGIFFLAGS: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	CHECK(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0, "SIOCSIFFLAGS: %s", strerror(errno));
	close(fd);
}

void e2e_init(const char *name)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: needs root\n", name);
		exit(E2E_SKIP);
	}
	/* A private network namespace: the capture follows only its own, and
	 * it disappears with the last process of the test. */
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "SKIP %s: unshare(CLONE_NEWNET): %s\n", name, strerror(errno));
		exit(E2E_SKIP);
	}
	lo_up();
	signal(SIGPIPE, SIG_IGN);
	atexit(e2e_cleanup);
	if (getenv("E2E_VERBOSE"))
		tsg_log_set_level(LOG_DEBUG);
	printf("== %s (pid %d)\n", name, getpid());
}

const char *e2e_rules(const char *yaml)
{
	FILE *f;

	if (rules_file[0])
		unlink(rules_file);
	if (!rules_dir[0]) {
		snprintf(rules_dir, sizeof(rules_dir), "/tmp/tsg-e2e-XXXXXX");
		CHECK(mkdtemp(rules_dir), "mkdtemp: %s", strerror(errno));
	}
	snprintf(rules_file, sizeof(rules_file), "%s/rules.yaml", rules_dir);
	f = fopen(rules_file, "w");
	CHECK(f, "%s: %s", rules_file, strerror(errno));
	fputs(yaml, f);
	fclose(f);
	return rules_dir;
}

static struct tsg_plan *plan_from(const char *dir, struct tsg_ruleset **rs_out)
{
	const char *paths[1] = { dir };
	struct tsg_diags d;
	struct tsg_ruleset *rs = NULL;
	struct tsg_plan *plan = NULL;
	int err;

	tsg_diags_init(&d);
	err = tsg_ruleset_load(paths, 1, false, &d, &rs);
	tsg_diags_print(&d, stderr);
	tsg_diags_fini(&d);
	CHECK(err == 0, "rules rejected: %s", strerror(-err));
	err = tsg_plan_build(rs, false, &plan);
	CHECK(err == 0, "plan: %s", strerror(-err));
	*rs_out = rs;
	return plan;
}

void e2e_cap_start(struct e2e_cap *c, const char *dir)
{
	struct tsg_capture_opts o = { .verbose = getenv("E2E_VERBOSE") != NULL };
	int err;

	memset(c, 0, sizeof(*c));
	c->plan = plan_from(dir, &c->rs);
	err = tsg_capture_new(c->plan, &o, &c->cap);
	if (err == -EPERM || err == -EOPNOTSUPP) {
		fprintf(stderr, "SKIP: capture unavailable: %s\n", strerror(-err));
		e2e_cleanup();
		exit(E2E_SKIP);
	}
	CHECK(err == 0, "tsg_capture_new: %s", strerror(-err));
}

void e2e_cap_update(struct e2e_cap *c, const char *dir)
{
	struct tsg_ruleset *rs;
	struct tsg_plan *plan = plan_from(dir, &rs);
	int err = tsg_capture_update_plan(c->cap, plan);

	CHECK(err == 0, "tsg_capture_update_plan: %s", strerror(-err));
	tsg_plan_free(c->plan);
	tsg_ruleset_free(c->rs);
	c->plan = plan;
	c->rs = rs;
}

void e2e_cap_stop(struct e2e_cap *c)
{
	tsg_capture_free(c->cap);
	tsg_plan_free(c->plan);
	tsg_ruleset_free(c->rs);
	memset(c, 0, sizeof(*c));
}

void e2e_collect(void *ctx, const struct tsg_event *ev)
{
	(void)ctx;
	if (e2e_ev.n == e2e_ev.cap) {
		size_t ncap = e2e_ev.cap ? e2e_ev.cap * 2 : 4096;
		struct tsg_event *nv;

		CHECK(ncap <= MAX_EVENTS, "more than %u events", MAX_EVENTS);
		nv = realloc(e2e_ev.v, ncap * sizeof(*nv));
		CHECK(nv, "out of memory");
		e2e_ev.v = nv;
		e2e_ev.cap = ncap;
	}
	e2e_ev.v[e2e_ev.n++] = *ev;
	if (getenv("E2E_PRINT")) {
		char buf[256];

		printf("  %s\n", e2e_fmt_event(ev, buf, sizeof(buf)));
	}
}

void e2e_poll_for(struct e2e_cap *c, int ms)
{
	uint64_t end = e2e_now_ns() + (uint64_t)ms * 1000000ull;

	for (;;) {
		uint64_t t = e2e_now_ns();
		int r;

		if (t >= end)
			break;
		r = tsg_capture_poll(c->cap, (int)((end - t) / 1000000ull) + 1, e2e_collect, NULL);
		CHECK(r >= 0 || r == -EINTR, "poll: %s", strerror(-r));
	}
}

int e2e_poll_until_exit(struct e2e_cap *c, pid_t pid, int timeout_ms)
{
	uint64_t end = e2e_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int st;

	while (e2e_now_ns() < end) {
		int r = tsg_capture_poll(c->cap, 50, e2e_collect, NULL);

		CHECK(r >= 0 || r == -EINTR, "poll: %s", strerror(-r));
		if (waitpid(pid, &st, WNOHANG) == pid) {
			for (int i = 0; i < nchildren; i++)
				if (children[i] == pid)
					children[i] = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
	}
	return -1;
}

pid_t e2e_spawn(const char *comm, int (*fn)(void *), void *arg)
{
	pid_t pid;

	CHECK(nchildren < MAX_CHILDREN, "too many children");
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		is_parent = false;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_NAME, comm);
		_exit(fn(arg));
	}
	children[nchildren++] = pid;
	return pid;
}

int e2e_wait(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	for (int i = 0; i < nchildren; i++)
		if (children[i] == pid)
			children[i] = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static socklen_t mkaddr(int family, const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, addr, &a->sin_addr);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons(port);
	inet_pton(AF_INET6, addr, &a6->sin6_addr);
	return sizeof(*a6);
}

int e2e_listen(int family, const char *addr, uint16_t port, int backlog, bool v6only)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(family, addr, port, &ss);
	int one = 1, v6 = v6only;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof(v6));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int e2e_connect(int family, const char *addr, uint16_t port, bool nonblock)
{
	struct sockaddr_storage ss;
	socklen_t len = mkaddr(family, addr, port, &ss);
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) && !(nonblock && errno == EINPROGRESS)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

long e2e_cmd_number(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	long v = -1;

	if (!p)
		return -1;
	if (fscanf(p, "%ld", &v) != 1)
		v = -1;
	pclose(p);
	return v;
}

void e2e_sync_init(struct e2e_sync *s)
{
	CHECK(pipe2(s->fd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
}

void e2e_sync_post(struct e2e_sync *s)
{
	char c = 1;

	if (write(s->fd[1], &c, 1) != 1)
		_exit(3);
}

void e2e_sync_wait(struct e2e_sync *s)
{
	char c;

	CHECK(read(s->fd[0], &c, 1) == 1, "sync: peer died");
}

const char *e2e_fmt_event(const struct tsg_event *ev, char *buf, size_t len)
{
	char la[64], ra[64];

	snprintf(buf, len, "sk=%" PRIx64 " %s->%s%s fam=%u %s:%u %s:%u pid=%u comm=%s uid=%u",
		 ev->sk, tsg_state_name(ev->from), tsg_state_name(ev->to),
		 ev->snapshot ? " snap" : "", ev->info.family,
		 tsg_addr_format(ev->info.laddr, la, sizeof(la)), ev->info.lport,
		 tsg_addr_format(ev->info.raddr, ra, sizeof(ra)), ev->info.rport,
		 (ev->info.have & TSG_HAVE(TSG_SF_PID)) ? ev->info.pid : 0,
		 (ev->info.have & TSG_HAVE(TSG_SF_COMM)) ? ev->info.comm : "?", ev->info.uid);
	return buf;
}
