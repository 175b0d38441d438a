/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the control socket server (control.h): setup, clients, requests.
 * The replies are rendered in control_reply.c.
 */
#include "control.h"
#include "control_priv.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct client {
	int fd;				      /* -1: free slot */
	char in[TSG_CONTROL_REQUEST_MAX + 1]; /* + the NUL */
	size_t inlen;
	char *out; /* the reply, once there is one */
	size_t outlen, outoff;
	uint64_t deadline; /* monotonic ms */
};

struct tsg_control {
	int lfd;
	char *path;
	dev_t dev;
	ino_t ino;
	struct tsg_control_ops ops;
	struct client cl[TSG_CONTROL_MAX_CLIENTS];
	size_t ncl;
	struct tsg_control_stats st;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- setup ------------------------------------------------------------------ */

static int fill_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	memcpy(a->sun_path, path, strlen(path));
	return 0;
}

/* Is a tsguard answering at path? 1 yes, 0 no (stale file removed), -errno. */
static int probe_existing(const char *path, const struct sockaddr_un *a)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST; /* not a socket: never removed */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)a, sizeof(*a));
	rc = rc == 0 ? 1 : -errno;
	close(fd);
	if (rc == 1)
		return 1;
	if (rc != -ECONNREFUSED)
		return rc;
	/* a crashed run left it: nobody listens */
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	log_info("control: removed the stale socket %s", path);
	return 0;
}

static int make_dir(const char *path)
{
	char *copy = strdup(path);
	const char *dir;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	dir = dirname(copy);
	if (access(dir, F_OK) < 0 && errno == ENOENT) {
		if (geteuid() != 0)
			rc = -ENOENT;
		else if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			rc = -errno;
	}
	free(copy);
	return rc;
}

static int listen_at(struct tsg_control *c, const struct sockaddr_un *a)
{
	struct stat st;
	mode_t old;
	int rc;

	c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->lfd < 0)
		return -errno;
	old = umask(0177); /* created 0600: never readable by others, not even briefly */
	rc = bind(c->lfd, (const struct sockaddr *)a, sizeof(*a));
	umask(old);
	if (rc < 0)
		return -errno;
	if (chmod(c->path, 0600) < 0 || lstat(c->path, &st) < 0) {
		rc = -errno;
		unlink(c->path);
		return rc;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if (listen(c->lfd, TSG_CONTROL_MAX_CLIENTS) < 0) {
		rc = -errno;
		unlink(c->path);
		c->ino = 0;
		return rc;
	}
	return 0;
}

static int setup(struct tsg_control *c, bool is_default)
{
	struct sockaddr_un a;
	int rc = fill_addr(c->path, &a);

	if (rc == 0 && is_default)
		rc = make_dir(c->path);
	if (rc == 0)
		rc = probe_existing(c->path, &a);
	if (rc == 1) {
		log_err("control: another tsguard answers on %s; two cannot share one socket "
			"(stop it, or give this one --control PATH or --control none)",
			c->path);
		return -EADDRINUSE;
	}
	if (rc == 0)
		rc = listen_at(c, &a);
	if (rc < 0 && !is_default)
		log_err("control: cannot listen on %s: %s", c->path,
			rc == -EEXIST ? "a file that is not a socket is there" : strerror(-rc));
	return rc;
}

int tsg_control_new(const char *path, bool is_default, const struct tsg_control_ops *ops,
		    struct tsg_control **out)
{
	struct tsg_control *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c || !(c->path = strdup(path))) {
		free(c);
		return -ENOMEM;
	}
	c->lfd = -1;
	c->ops = *ops;
	for (size_t i = 0; i < TSG_CONTROL_MAX_CLIENTS; i++)
		c->cl[i].fd = -1;
	rc = setup(c, is_default);
	if (rc < 0) {
		tsg_control_free(c);
		if (is_default && rc != -EADDRINUSE) {
			log_warn("control: cannot listen on %s: %s; running without a control "
				 "socket (see --control)",
				 path, rc == -EEXIST ? "not a socket" : strerror(-rc));
			return 0;
		}
		return rc;
	}
	log_info("control: listening on %s", path);
	*out = c;
	return 0;
}

static void client_close(struct tsg_control *c, struct client *k)
{
	char junk[4096];

	/* what the client sent beyond its request is read first: closing on
	 * unread data would reset the connection before it reads our reply */
	for (int i = 0; i < 16 && recv(k->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
		;
	close(k->fd);
	free(k->out);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
	c->ncl--;
}

void tsg_control_free(struct tsg_control *c)
{
	struct stat st;

	if (!c)
		return;
	for (size_t i = 0; i < TSG_CONTROL_MAX_CLIENTS; i++)
		if (c->cl[i].fd >= 0)
			client_close(c, &c->cl[i]);
	if (c->lfd >= 0)
		close(c->lfd);
	/* only our own socket: another tsguard may have replaced it since */
	if (c->ino && lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	free(c->path);
	free(c);
}

/* ---- clients ------------------------------------------------------------------ */

/* Writes what fits; closes the client when all is written or it went away. */
static void client_flush(struct tsg_control *c, struct client *k)
{
	while (k->outoff < k->outlen) {
		ssize_t w = send(k->fd, k->out + k->outoff, k->outlen - k->outoff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* the rest when it can take it, within the deadline */
		if (w <= 0)
			break;
		k->outoff += (size_t)w;
	}
	client_close(c, k);
}

static void client_reply(struct tsg_control *c, struct client *k, char *reply)
{
	if (!reply)
		reply = strdup("error\nerror: out of memory\n");
	if (!reply) {
		client_close(c, k);
		return;
	}
	k->out = reply;
	k->outlen = strlen(reply);
	k->outoff = 0;
	shutdown(k->fd, SHUT_RD);
	client_flush(c, k);
}

/* "status", "alerts json", ...: the reply (malloc'd). */
static char *dispatch(struct tsg_control *c, char *line)
{
	char *save = NULL, *cmd = strtok_r(line, " \t\r", &save);
	char *fmt = cmd ? strtok_r(NULL, " \t\r", &save) : NULL;
	bool json = false;

	if (fmt && !strcmp(fmt, "json"))
		json = true;
	else if ((fmt && strcmp(fmt, "text")) || strtok_r(NULL, " \t\r", &save)) {
		c->st.bad_requests++;
		return tsg_ctl_error_reply("a request is COMMAND [text|json]");
	}
	if (!cmd) {
		c->st.bad_requests++;
		return tsg_ctl_error_reply("empty request");
	}
	c->st.requests++;
	if (!strcmp(cmd, "status"))
		return tsg_ctl_status_reply(&c->ops, &c->st, json);
	if (!strcmp(cmd, "alerts"))
		return tsg_ctl_alerts_reply(&c->ops, json);
	if (!strcmp(cmd, "reload"))
		return tsg_ctl_reload_reply(&c->ops, json);
	c->st.requests--;
	c->st.bad_requests++;
	return tsg_ctl_error_reply("unknown command (status, alerts, reload)");
}

static void client_read(struct tsg_control *c, struct client *k)
{
	size_t len;
	char *nl;
	ssize_t r;

	do
		r = recv(k->fd, k->in + k->inlen, TSG_CONTROL_REQUEST_MAX - k->inlen, MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r < 0 || (r == 0 && !k->inlen)) {
		client_close(c, k); /* gone, or closed without a word */
		return;
	}
	k->inlen += (size_t)r;
	nl = memchr(k->in, '\n', k->inlen);
	if (!nl && r > 0) {
		if (k->inlen < TSG_CONTROL_REQUEST_MAX)
			return; /* more to come */
		c->st.bad_requests++;
		client_reply(c, k, tsg_ctl_error_reply("request longer than 256 bytes"));
		return;
	}
	/* a line, or the last words before the client shut its side */
	len = nl ? (size_t)(nl - k->in) : k->inlen;
	if (memchr(k->in, '\0', len)) {
		c->st.bad_requests++;
		client_reply(c, k, tsg_ctl_error_reply("a NUL byte in the request"));
		return;
	}
	k->in[len] = '\0';
	client_reply(c, k, dispatch(c, k->in));
}

static void accept_all(struct tsg_control *c)
{
	for (;;) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *k = NULL;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("control: accept: %s", strerror(errno));
			return;
		}
		for (size_t i = 0; i < TSG_CONTROL_MAX_CLIENTS && !k; i++)
			if (c->cl[i].fd < 0)
				k = &c->cl[i];
		if (!k) {
			static const char busy[] =
			    "error\nerror: too many control clients at once\n";
			char busy_in[TSG_CONTROL_REQUEST_MAX];

			if (!c->st.busy++)
				log_warn("control: more than %d clients at once; the others are "
					 "refused (counted in status)",
					 TSG_CONTROL_MAX_CLIENTS);
			(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)!recv(fd, busy_in, sizeof(busy_in), MSG_DONTWAIT); /* no reset */
			close(fd);
			continue;
		}
		k->fd = fd;
		k->deadline = mono_ms() + TSG_CONTROL_TIMEOUT_MS;
		c->ncl++;
	}
}

size_t tsg_control_fill_pollfds(const struct tsg_control *c, struct pollfd *p, size_t cap)
{
	size_t n = 0;

	if (!c || !cap)
		return 0;
	p[n++] = (struct pollfd){.fd = c->lfd, .events = POLLIN};
	for (size_t i = 0; i < TSG_CONTROL_MAX_CLIENTS && n < cap; i++) {
		const struct client *k = &c->cl[i];

		if (k->fd >= 0)
			p[n++] = (struct pollfd){.fd = k->fd, .events = k->out ? POLLOUT : POLLIN};
	}
	return n;
}

int tsg_control_timeout(const struct tsg_control *c, int timeout_ms)
{
	uint64_t now = mono_ms();

	for (size_t i = 0; c && i < TSG_CONTROL_MAX_CLIENTS; i++) {
		const struct client *k = &c->cl[i];
		int left;

		if (k->fd < 0)
			continue;
		left = k->deadline > now ? (int)(k->deadline - now) : 0;
		if (timeout_ms < 0 || left < timeout_ms)
			timeout_ms = left;
	}
	return timeout_ms;
}

static struct client *client_by_fd(struct tsg_control *c, int fd)
{
	for (size_t i = 0; i < TSG_CONTROL_MAX_CLIENTS; i++)
		if (c->cl[i].fd == fd)
			return &c->cl[i];
	return NULL;
}

void tsg_control_handle(struct tsg_control *c, const struct pollfd *p, size_t n)
{
	uint64_t now;

	if (!c)
		return;
	for (size_t i = 0; i < n; i++) {
		struct client *k;

		if (!p[i].revents)
			continue;
		if (p[i].fd == c->lfd) {
			accept_all(c);
			continue;
		}
		k = client_by_fd(c, p[i].fd);
		if (!k)
			continue;
		if (k->out)
			client_flush(c, k);
		else
			client_read(c, k);
	}
	now = mono_ms();
	for (size_t i = 0; i < TSG_CONTROL_MAX_CLIENTS; i++) {
		struct client *k = &c->cl[i];

		if (k->fd >= 0 && k->deadline <= now) {
			c->st.timed_out++;
			client_close(c, k);
		}
	}
}

void tsg_control_get_stats(const struct tsg_control *c, struct tsg_control_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (c)
		*st = c->st;
}

/* ---- waiting for input ------------------------------------------------------ */

int tsg_control_wait(struct tsg_control *c, int fd, int timeout_ms)
{
	struct pollfd p[1 + TSG_CONTROL_MAX_POLLFDS];
	size_t n;
	int rc;

	p[0] = (struct pollfd){.fd = fd, .events = POLLIN};
	n = 1 + tsg_control_fill_pollfds(c, p + 1, TSG_CONTROL_MAX_POLLFDS);
	rc = poll(p, n, tsg_control_timeout(c, timeout_ms));
	if (rc < 0)
		return -errno;
	tsg_control_handle(c, p + 1, n - 1);
	return p[0].revents ? 1 : 0;
}

struct wrapped {
	struct tsg_control *c;
	int fd;
};

static bool stop_asked(const struct tsg_control *c)
{
	return c->ops.stopping && c->ops.stopping(c->ops.ctx);
}

static ssize_t wrapped_read(void *cookie, char *buf, size_t size)
{
	struct wrapped *w = cookie;

	for (;;) {
		int rc = tsg_control_wait(w->c, w->fd, -1);
		ssize_t r;

		/* a signal: only a stop cuts the read short, so that a reload
		 * signal loses no half-read line (as a restarted read() would) */
		if (rc == -EINTR && !stop_asked(w->c))
			continue;
		if (rc < 0) {
			errno = -rc;
			return -1;
		}
		if (rc == 0)
			continue;
		r = read(w->fd, buf, size);
		if (r < 0 && (errno == EAGAIN || (errno == EINTR && !stop_asked(w->c))))
			continue;
		return r;
	}
}

static int wrapped_close(void *cookie)
{
	free(cookie);
	return 0;
}

FILE *tsg_control_wrap_input(struct tsg_control *c, FILE *in)
{
	cookie_io_functions_t io = {.read = wrapped_read, .close = wrapped_close};
	struct wrapped *w = malloc(sizeof(*w));
	FILE *f;

	if (!w)
		return NULL;
	w->c = c;
	w->fd = fileno(in);
	f = fopencookie(w, "r", io);
	if (!f)
		free(w);
	return f;
}
