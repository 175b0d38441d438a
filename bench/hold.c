/* SPDX-License-Identifier: MIT */
/*
 * hold: opens loopback TCP connections and holds them ESTABLISHED, for the
 * live memory benchmark (bench/live_mem.sh; no tsguard code). One listener
 * on 127.0.0.1:PORT; clients bound round-robin to 127.0.0.2, 127.0.0.3, ...
 * with IP_BIND_ADDRESS_NO_PORT, so that the ephemeral ports are counted per
 * client address and do not run out. Both ends stay open: 2 sockets a
 * connection. RLIMIT_NOFILE is raised as far as the hard limit (and
 * fs.nr_open) allow; the sockets are held by worker processes of that many
 * fds each, started one after the other (one accepts at a time). When the
 * kernel refuses a socket (no memory, no port) it stops there and holds what
 * it has.
 *   hold [-n CONNECTIONS] [-p PORT] [-a CLIENT_ADDRESSES]
 * Prints "held CONNECTIONS SOCKETS wanted W error E processes P nofile F"
 * once all are open, then waits. SIGUSR1: prints "optmem BYTES SOCKETS", the
 * sum of the sockets' sk_omem_alloc (SO_MEMINFO), where the kernel charges a
 * socket's BPF socket storage. SIGTERM or SIGINT: the workers end, then it.
 */
#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#define BATCH	    1024 /* connects before the accepts that drain the backlog */
#define MAX_WORKERS 4096

static volatile sig_atomic_t want_mem, want_stop;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_mem = 1;
	else
		want_stop = 1;
}

/* Raises the fd limit to what `want` fds need, capped by fs.nr_open. */
static long raise_nofile(long want)
{
	struct rlimit r;
	long max = 1048576;
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");

	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 1048576;
		fclose(f);
	}
	if (want > max)
		want = max;
	r.rlim_cur = r.rlim_max = (rlim_t)want;
	if (setrlimit(RLIMIT_NOFILE, &r) == 0)
		return want;
	/* no CAP_SYS_RESOURCE: up to the hard limit */
	if (getrlimit(RLIMIT_NOFILE, &r))
		return 1024;
	if (r.rlim_max != RLIM_INFINITY && (long)r.rlim_max < want)
		want = (long)r.rlim_max;
	r.rlim_cur = (rlim_t)want;
	return setrlimit(RLIMIT_NOFILE, &r) ? 1024 : want;
}

/* One client from 127.0.0.(2 + i % addrs): its fd or -errno. */
static int client(const struct sockaddr_in *srv, long i, int addrs)
{
	struct sockaddr_in c = {.sin_family = AF_INET};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -errno;
	c.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (uint32_t)(i % addrs));
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&c, sizeof(c)) ||
	    connect(fd, (const struct sockaddr *)srv, sizeof(*srv))) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* Opens up to n connections; returns how many, *err the errno that stopped it. */
static long open_all(int l, const struct sockaddr_in *srv, long first, long n, int addrs, int *err)
{
	long done = 0;

	*err = 0;
	while (done < n && !want_stop) {
		long b = n - done < BATCH ? n - done : BATCH, k = 0;

		for (; k < b; k++) {
			int fd = client(srv, first + done + k, addrs);

			if (fd < 0) {
				*err = -fd;
				break;
			}
		}
		for (long a = 0; a < k; a++) {
			int s = accept(l, NULL, NULL);

			if (s < 0) {
				*err = errno;
				return done + a;
			}
		}
		done += k;
		if (*err)
			break;
	}
	return done;
}

/* The sum of sk_omem_alloc over the sockets of this process, to fd `out`. */
static void report_optmem(int out, long maxfd)
{
	unsigned long long sum = 0, socks = 0;
	char line[96];
	int len;

	for (int fd = 3; fd < maxfd; fd++) {
		__u32 mi[SK_MEMINFO_VARS];
		socklen_t ml = sizeof(mi);

		if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &ml) == 0) {
			sum += mi[SK_MEMINFO_OPTMEM];
			socks++;
		}
	}
	len = snprintf(line, sizeof(line), "%llu %llu\n", sum, socks);
	if (write(out, line, (size_t)len) != len)
		want_stop = 1;
}

/* A worker: opens its share and answers SIGUSR1 on `out` until stopped. */
static int worker(int l, int out, const struct sockaddr_in *srv, long first, long n, int addrs,
		  long lim)
{
	char line[96];
	long got;
	int err, len;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	got = open_all(l, srv, first, n, addrs, &err);
	len = snprintf(line, sizeof(line), "%ld %d\n", got, err);
	if (write(out, line, (size_t)len) != len)
		return 1;
	while (!want_stop) {
		if (want_mem) {
			want_mem = 0;
			report_optmem(out, lim);
		}
		if (!want_mem && !want_stop)
			usleep(100000); /* a signal cuts it short */
	}
	return 0;
}

/* One line of two numbers from a worker's pipe; -1 when it ended. */
static int read_two(FILE *f, unsigned long long *a, unsigned long long *b)
{
	return fscanf(f, "%llu %llu", a, b) == 2 ? 0 : -1;
}

struct workers {
	pid_t pid[MAX_WORKERS];
	FILE *from[MAX_WORKERS];
	int n;
};

/* Starts workers one after the other (one accepts at a time) until n are held. */
static long start_workers(struct workers *w, int l, const struct sockaddr_in *srv, long n,
			  int addrs, long lim, int *err)
{
	long held = 0;

	*err = 0;
	while (held < n && w->n < MAX_WORKERS && !*err && !want_stop) {
		unsigned long long got, e;
		long per = (lim - 32 - w->n) / 2; /* the pipes of earlier workers are open */
		long share = n - held < per ? n - held : per;
		int p[2];
		pid_t pid;

		if (pipe(p))
			return *err = errno, held;
		fflush(stdout);
		if ((pid = fork()) < 0)
			return *err = errno, close(p[0]), close(p[1]), held;
		if (pid == 0) {
			close(p[0]);
			_exit(worker(l, p[1], srv, held, share, addrs, lim));
		}
		close(p[1]);
		w->pid[w->n] = pid;
		w->from[w->n++] = fdopen(p[0], "r");
		if (!w->from[w->n - 1] || read_two(w->from[w->n - 1], &got, &e) < 0)
			return *err = EIO, held;
		held += (long)got;
		*err = (int)e;
	}
	return held;
}

static void optmem_all(struct workers *w)
{
	unsigned long long sum = 0, socks = 0, a, b;

	for (int i = 0; i < w->n; i++)
		kill(w->pid[i], SIGUSR1);
	for (int i = 0; i < w->n; i++)
		if (read_two(w->from[i], &a, &b) == 0) {
			sum += a;
			socks += b;
		}
	printf("optmem %llu %llu\n", sum, socks);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct sockaddr_in srv = {.sin_family = AF_INET};
	static struct workers w;
	long n = 1000, lim, held;
	int port = 7950, addrs = 250, l, err;

	if (bench_args(argc, argv, &n, &port, &addrs))
		return 2;
	if (n < 1 || addrs < 1 || addrs > 250 || port < 1 || port > 65535)
		return fprintf(stderr, "hold: bad arguments\n"), 2;
	signal(SIGUSR1, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	lim = raise_nofile(2 * n + 64);
	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.sin_port = htons((uint16_t)port);
	if ((l = bench_listener(&srv, 4096)) < 0)
		return fprintf(stderr, "hold: listen: %s\n", strerror(-l)), 1;
	held = start_workers(&w, l, &srv, n, addrs, lim, &err);
	printf("held %ld %ld wanted %ld error %s processes %d nofile %ld\n", held, 2 * held, n,
	       err ? strerror(err) : "none", w.n, lim);
	fflush(stdout);
	while (!want_stop) {
		if (want_mem) {
			want_mem = 0;
			optmem_all(&w);
		}
		if (!want_mem && !want_stop)
			usleep(100000); /* a signal cuts it short */
	}
	for (int i = 0; i < w.n; i++)
		kill(w.pid[i], SIGTERM);
	for (int i = 0; i < w.n; i++)
		waitpid(w.pid[i], NULL, 0);
	return 0;
}
