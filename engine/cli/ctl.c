/* SPDX-License-Identifier: MIT */
/*
 * tsguard ctl: sends one request to a running tsguard's control socket and
 * prints the reply (control.h gives the protocol).
 */
#include "control.h"
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_REPLY_MAX (4 * 1024 * 1024)
#define CTL_WAIT_S    60 /* a live reload takes a new snapshot: allow for it */

static void ctl_usage(FILE *f)
{
	fprintf(f, "usage: tsguard ctl [--control PATH] [-o text|json] status|alerts|reload\n"
		   "\n"
		   "  status   version, uptime, rules, events, sockets, namespaces, action queues\n"
		   "  alerts   every alert now pending or firing\n"
		   "  reload   validate the rule files again and swap them in (as SIGHUP)\n"
		   "\n"
		   "  --control PATH   the control socket (default " TSG_CONTROL_DEFAULT ")\n"
		   "  -o, --output     text (default) or json\n"
		   "\n"
		   "Exit status: 0 ok, 1 no tsguard answers, 2 usage error or reload rejected.\n");
}

static int ctl_connect(const char *path)
{
	struct timeval tv = {.tv_sec = CTL_WAIT_S};
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Sends the request, reads the whole reply (bounded). */
static int ctl_exchange(int fd, const char *req, char **out, size_t *outlen)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1);

	if (!buf)
		return -ENOMEM;
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		free(buf);
		return -errno;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *n = cap < CTL_REPLY_MAX ? realloc(buf, cap * 2 + 1) : NULL;

			if (!n) {
				free(buf);
				return -E2BIG;
			}
			buf = n;
			cap *= 2;
		}
		r = recv(fd, buf + len, cap - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			free(buf);
			return -e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/* Prints the reply body; returns the exit status its header means. */
static int ctl_print(const char *path, const char *reply, bool json)
{
	const char *nl = strchr(reply, '\n'), *body = nl ? nl + 1 : "";
	size_t hl = nl ? (size_t)(nl - reply) : strlen(reply);

	if (hl == 2 && !strncmp(reply, "ok", 2)) {
		fputs(body, stdout);
		return 0;
	}
	if (hl == 8 && !strncmp(reply, "rejected", 8)) {
		fputs(body, json ? stdout : stderr);
		return 2;
	}
	if (hl == 6 && !strncmp(reply, "failed", 6)) {
		fputs(body, json ? stdout : stderr);
		return 1;
	}
	if (hl == 5 && !strncmp(reply, "error", 5)) {
		fputs(body, stderr);
		return 2;
	}
	fprintf(stderr, "tsguard ctl: %s: not a tsguard reply\n", path);
	return 1;
}

int tsg_ctl_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"control", required_argument, NULL, 'c'},
	    {"output", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *path = TSG_CONTROL_DEFAULT, *cmd;
	char req[64], *reply = NULL;
	bool json = false;
	size_t len;
	int c, fd, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		if (c == 'c') {
			path = optarg;
		} else if (c == 'o' && (!strcmp(optarg, "json") || !strcmp(optarg, "text"))) {
			json = !strcmp(optarg, "json");
		} else if (c == 'h') {
			ctl_usage(stdout);
			return 0;
		} else {
			if (c == 'o')
				fprintf(stderr,
					"tsguard ctl: --output is text or json, not \"%s\"\n",
					optarg);
			ctl_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		ctl_usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (strcmp(cmd, "status") && strcmp(cmd, "alerts") && strcmp(cmd, "reload")) {
		fprintf(stderr, "tsguard ctl: unknown command \"%s\" (status, alerts, reload)\n",
			cmd);
		return 2;
	}
	fd = ctl_connect(path);
	if (fd < 0) {
		fprintf(stderr, "tsguard ctl: no tsguard answers on %s: %s\n", path, strerror(-fd));
		return 1;
	}
	snprintf(req, sizeof(req), "%s%s\n", cmd, json ? " json" : "");
	rc = ctl_exchange(fd, req, &reply, &len);
	close(fd);
	if (rc < 0) {
		fprintf(stderr, "tsguard ctl: %s: %s\n", path,
			rc == -EAGAIN ? "no reply in time" : strerror(-rc));
		return 1;
	}
	rc = ctl_print(path, reply, json);
	free(reply);
	return rc;
}
